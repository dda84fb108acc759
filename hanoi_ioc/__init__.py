"""The ``hanoi-ioc`` command: wires the services together and manages embedded defaults."""
