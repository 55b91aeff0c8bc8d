"""qabot: ask questions of a folder of news articles and get cited passages back."""

__version__ = "0.1.0"
