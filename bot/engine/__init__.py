"""The pure conversation core: `Engine.handle(session, event) -> Turn`.

No I/O, no Telegram, no database, no clock: channels and stores are adapters around it.
"""
