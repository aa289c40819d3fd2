from synthgen.cli import app

app()
