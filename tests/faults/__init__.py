"""The fault suite (issue 13, docs/faults.md): a steady load of sign-ups while services are killed
with SIGKILL, the broker is restarted and PostgreSQL restarts immediately (a crash), then an outside
view (HTTP answers, the topics, the mail sink) checks that nothing accepted was lost and no effect was
duplicated; and a Kafka outage that must stay quiet and cheap. `make test` runs a short form
(tests/integration/test_faults.py, test_outage.py), `make fault` the full one.
"""
