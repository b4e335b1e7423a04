"""Adapters on PostgreSQL (psycopg 3): the sql port with read replicas, the queue port, and the search port."""
