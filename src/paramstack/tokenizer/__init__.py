"""Own tokenizer: SentencePiece training and fertility evaluation against reference tokenizers.

The build side only: the gateway never imports this package.
"""
