"""Audiences: the filter language, its compiler to one SQL query, previews and segments."""
