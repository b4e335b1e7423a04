"""The phases of ``summit bench run``, in the order the runner calls them: ``stage`` (start or
target the stage, its start-up time and memory at rest), ``seeding``, ``baselines``, ``raw``
(single endpoints with wrk), ``probes`` (uploads and sign-ups), ``mix`` (the user-journey steps),
``demands`` and ``assemble`` (the report). Each takes the run's ``Session`` and plain values,
and returns plain values."""
