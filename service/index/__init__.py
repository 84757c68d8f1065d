"""Vector indexes: FAISS caches of the database's face and user vectors, one pair per collection."""
