"""Model families: BERT (every head), BertGeneration, EncoderDecoder."""
