"""`profit-rl inspect`: which tokens each selection rule keeps: the command (command, options), the per-token scores
(token_scores), the report's numbers (summary) and the pure statistics behind them (stats), and its HTML page (html,
templates/)."""
