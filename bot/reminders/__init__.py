"""Repayment reminders and check-ins: rows in the store, sent through the outbox.

`schedule` is the pure maths of when (monthly due dates, days before, time zones, the
late-delivery window); `firing` decides what one due row becomes (messages, its next
occurrence, a moved conversation) without I/O; `loop` claims due rows in batches and
hands them to the outbox, in every long-running process.
"""
