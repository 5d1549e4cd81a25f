"""The signature checker's helper process: ``python -m relaysim.relay.verifier_process``.

A module of its own because ``relaysim.relay`` imports :mod:`relaysim.relay.verifier` (through the
websocket layer): run as ``-m`` that module would be executed a second time, as ``__main__``.
"""

from relaysim.relay.verifier import main

if __name__ == "__main__":
    main()
