"""Operations tooling: provisioning and running the project's own TimescaleDB and Mosquitto,
device credentials for that broker, isolated test worlds, the process supervisor and the demo.

Not part of the runtime wheel: it runs from a checkout (the Makefile puts the checkout on the
virtualenv's path). The runtime packages (prognos, ingest, detection, orders, service_api,
schemas) never import it.
"""
