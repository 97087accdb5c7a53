"""Dataset readers, preprocessing and the prepared-sample cache."""
