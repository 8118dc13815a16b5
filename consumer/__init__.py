"""The consumer daemon: ``huey_consumer.py main.huey``.

``cli`` builds a :class:`~consumer.config.Config`, ``loader`` imports the
application, and the :class:`~consumer.supervisor.Supervisor` forks
:class:`~consumer.worker.Worker` processes and runs the
:class:`~consumer.scheduler.Scheduler` thread.
"""
