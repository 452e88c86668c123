"""The HTTP API: the analysis contract, CDS Hooks 2.0 and FHIR R4 over FastAPI (``api.app:create_app``)."""
