"""Exit codes: the contract between workers, the supervisor and whoever
started the consumer (systemd, a shell, a test)."""

OK = 0
ERROR = 1              # an unexpected failure of the supervisor itself
USAGE = 2              # bad command line or app path: nothing was started
WORKER_BOOT_ERROR = 3  # a worker could not start (startup hook, storage); repeated -> consumer stops
