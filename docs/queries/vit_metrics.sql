SELECT space, dataset || CASE WHEN stand_in THEN ' ¹' ELSE '' END AS dataset, metric,
  count(*) FILTER (WHERE sign = 'positive') || ' / ' || count(*) FILTER (WHERE sign = 'negative') || ' / '
    || count(*) FILTER (WHERE sign IN ('unclear', 'undefined')) AS "positive / negative / unclear",
  arg_max(proxy, spearman) || printf(' (%+.2f)', max(spearman)) AS best,
  printf('%+.2f, rank %d of %d', any_value(spearman) FILTER (WHERE proxy = 'params'),
         any_value(proxy_rank) FILTER (WHERE proxy = 'params'), count(*)) AS "params",
  CASE WHEN any_value(spearman) FILTER (WHERE proxy = 'tf_tas') IS NULL THEN '—'
       WHEN any_value(spearman) FILTER (WHERE proxy = 'tf_tas') > any_value(spearman_hi) FILTER (WHERE proxy = 'params')
       THEN 'yes' WHEN any_value(spearman) FILTER (WHERE proxy = 'tf_tas') < any_value(spearman_lo) FILTER (WHERE proxy = 'params')
       THEN 'no, below' ELSE 'no, within its interval' END AS "tf_tas beats params"
FROM study_correlation
WHERE run_id = latest('vit_study')
GROUP BY space, dataset, stand_in, metric
ORDER BY space = 'nb201', space, stand_in, dataset, metric
