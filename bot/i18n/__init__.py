"""Translations (Babel catalogs read from `.po`), formatting by locale, and the YAML extractor."""
