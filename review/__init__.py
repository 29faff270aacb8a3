"""`python -m review`: the review page, where people label the images the model was unsure of."""
