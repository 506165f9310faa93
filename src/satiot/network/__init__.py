"""The satellite IoT network: the digital twin (orbits, contacts, links, access, storage),
the air interface, and the network server (ingest, delivery, downlinks)."""
