"""The cdn port on Varnish: purges sent to every tier of the stage's caches."""
