"""Vectors: embedding models loaded from local folders (`models`), the pgvector store with one
HNSW index per model (`index`), and nearest-neighbour and meaning searches over it (`search`).

Platform infrastructure, like the LLM gateway: any domain may embed, store and search; the job
that embeds a dataset belongs to the selection domain.
"""
