"""The at-least-once service shell that ingest and processing both run on.

A message is received once from a persistent MQTT session (:mod:`~stream.consumer`, manual
acknowledgements; paho on the buffered socket of :mod:`~stream.mqtt_socket`), decoded and
validated once against the registry and the accepted time window (:mod:`~stream.validate`),
batched by size or age (:mod:`~stream.batcher`), handed to the service's handler and
acknowledged only after the handler committed, in arrival order (:mod:`~stream.pipeline`).
:mod:`~stream.service` wires it all for a service (:class:`~stream.service.StreamService`,
its settings base in :mod:`~stream.settings`); :mod:`~stream.backoff` is the one retry
policy of the project. Nothing here knows what a batch means: ingest writes it, processing
decides on it.
"""
