"""Bilingual (French/English) enrichment of social posts: language, sentiment, intent, reason,
entities. Pure Python + numpy/scipy; models are loaded lazily, once per process."""

from relais.nlp.enrich import Enrichment, enrich_texts

MODEL_VERSION = "relais-nlp-2025.11.7"

__all__ = ["MODEL_VERSION", "Enrichment", "enrich_texts"]
