"""What every pileon process shares: settings, the watchlist, keys, retry, text folding,
process handling. Imports only :mod:`pileon.schema`."""
