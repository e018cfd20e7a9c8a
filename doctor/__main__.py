"""`python -m doctor` runs the pgdoctor command line."""

from doctor.cli import main

main()
