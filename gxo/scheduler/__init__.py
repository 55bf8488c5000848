"""The scheduler: pure decisions (the state machine) and the one loop that does its I/O.

::

    executor events ──► loop ──inputs (messages)──► state ──► listener (notify) ──► events
          ▲                 ◄── instructions ──────┘
          └── Run / cancel ─┘

- :mod:`~gxo.scheduler.messages`: the typed inputs (each with a stimulus id), instructions
  and the listener protocol;
- :mod:`~gxo.scheduler.state`: the state machine (task statuses, instance phases, each
  through a checked transition table), no I/O; :mod:`~gxo.scheduler.records`: what it
  remembers; :mod:`~gxo.scheduler.policy`: retry and pipelining decisions;
- :mod:`~gxo.scheduler.loop`: the only I/O, over any :class:`gxo.pool.Executor`;
- :mod:`~gxo.scheduler.notify`: the listener that builds the run's events;
- :mod:`~gxo.scheduler.report`: the run report, built once from the final records.

``messages``, ``policy``, ``records`` and ``state`` are level 3 and import nothing from
:mod:`gxo.pool`; ``loop``, ``notify`` and ``report`` are level 4 (DESIGN §10).
"""
