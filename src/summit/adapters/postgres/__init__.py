"""Adapters on PostgreSQL (psycopg 3): the sql port with read replicas, and the queue port."""
