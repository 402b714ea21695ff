"""Constants shared by the demo pipeline definition and its Trainer module."""

# Months arrive as 1..12 and Transform shifts them to 0..11, so the Trainer's
# Embedding and the validator both need 12 rows.
MONTH_EMBEDDING_DIM = 12

LABEL_KEY = "clicked"

# The Trainer's custom_config key: transformed feature -> its vocabulary's name, for
# the features whose Embedding the Trainer sizes to the vocabulary alone, forgetting
# the OOV buckets (the `small_table` config's bug).
TABLES_WITHOUT_OOV_ROWS_KEY = "tables_without_oov_rows"
# The feature the `small_table` config gets wrong, and the vocab_filename
# demo_preprocessing gives its vocabulary.
SMALL_TABLE_FEATURE = "city_xf"
SMALL_TABLE_VOCABULARY = "city"
