"""pileon's stream processing (imported as ``pileon.streams``): :mod:`.detection`, the
per-person analysis that needs no Kafka, and :mod:`.worker`, the Faust app that runs it."""
