"""Vector store adapters (Milvus Lite embedded, Milvus server)."""
