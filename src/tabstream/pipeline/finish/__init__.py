"""Step 3 of a run: refit each row's best or build a Caruana ensemble, save the models as
verified bundles, register them and rank the rows."""
