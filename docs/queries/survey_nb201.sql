SELECT proxy, n, round(spearman, 3) AS "ρ (ours)", round(kendall, 3) AS "Kendall τ", published, round(gap, 2) AS gap,
       source, protocol
FROM published_comparison
WHERE run_id = latest('survey_nb201') AND metric = 'test_acc'
ORDER BY round(spearman, 3) DESC NULLS LAST, proxy  -- equal to the printed digits (params, flops and az_complexity rank NB201 cells alike, and DuckDB sums in no fixed order): by name
