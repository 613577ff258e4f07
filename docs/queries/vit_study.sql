SELECT space, dataset || CASE WHEN stand_in THEN ' ¹' ELSE '' END AS dataset, metric, n,
  any_value(cell) FILTER (WHERE proxy = 'params') AS params,
  any_value(cell) FILTER (WHERE proxy = 'flops') AS flops,
  any_value(cell) FILTER (WHERE proxy = 'l2_norm') AS l2_norm,
  any_value(cell) FILTER (WHERE proxy = 'grad_norm') AS grad_norm,
  any_value(cell) FILTER (WHERE proxy = 'snip') AS snip,
  any_value(cell) FILTER (WHERE proxy = 'synflow') AS synflow,
  any_value(cell) FILTER (WHERE proxy = 'tf_tas') AS tf_tas
FROM (SELECT space, dataset, stand_in, metric, n, proxy,
             printf('%+.2f [%+.2f, %+.2f]', spearman, spearman_lo, spearman_hi) AS cell
      FROM study_correlation
      WHERE run_id = latest('vit_study'))
GROUP BY space, dataset, stand_in, metric, n
ORDER BY space = 'nb201', space, stand_in, dataset, metric
