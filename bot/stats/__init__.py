"""Operators' view of the conversations: anonymous funnel events and their report.

`funnel` says which events a turn counts (pure: no I/O, nothing a person typed),
`report` aggregates stored events into the funnel, causes, products and bands (text
and JSON), and `chart` draws it as a PNG.
"""
