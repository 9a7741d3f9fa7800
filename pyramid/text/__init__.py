"""Text handling shared by page splitting, insight segmentation and evidence selection: one
markdown block parser (``markdown``) and one sentence splitter (``sentences``), so a sentence is the
same sentence wherever the pyramid cuts text."""

from __future__ import annotations

from .markdown import Block, Item, blocks, list_items
from .sentences import sentence_spans, sentences

__all__ = ["Block", "Item", "blocks", "list_items", "sentence_spans", "sentences"]
