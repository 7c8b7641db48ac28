"""Vector + lexical stores behind one protocol (see :mod:`paramstack.rag.stores.protocol`)."""
