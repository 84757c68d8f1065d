"""Face models and their maths: decode, detect, describe, align, embed, score.

Nothing in this package knows about HTTP or databases; the service layer drives it.
"""
