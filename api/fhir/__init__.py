"""FHIR R4 adapters: resources in (``inbound``), DetectedIssue out (``outbound``), codes (``codes``)."""
