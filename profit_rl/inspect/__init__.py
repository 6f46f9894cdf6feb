"""`profit-rl inspect`: which tokens each selection rule keeps (cli), the pure statistics behind it (stats),
and its HTML page (html, templates/)."""
