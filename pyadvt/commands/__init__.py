"""``pyadvt`` sub-commands other than experiments (registered in :data:`pyadvt.cli.COMMANDS`)."""
