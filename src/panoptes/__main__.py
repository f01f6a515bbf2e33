from panoptes.cli.main import app

app(prog_name="panoptes")
