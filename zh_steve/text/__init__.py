"""Text towers: MineCLIP (English, target space) and Chinese-CLIP (Chinese, source space)."""
