"""What the tests share: the stand-in Bot API, the webhook and durability harnesses, and
running `python -m bot` as an operator does. Also used by bench/webhook_throughput.py."""
