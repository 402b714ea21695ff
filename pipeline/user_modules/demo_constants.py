"""Constants shared by the demo pipeline definition and its Trainer module."""

# Months arrive as 1..12 and Transform shifts them to 0..11, so the Trainer's
# Embedding and the validator both need 12 rows.
MONTH_EMBEDDING_DIM = 12

LABEL_KEY = "clicked"
