SELECT proxy,
  any_value(cell) FILTER (WHERE space = 'autoformer_tiny' AND metric = 'test_acc') AS "AutoFormer base",
  any_value(cell) FILTER (WHERE space = 'autoformer_tiny' AND metric = 'test_acc_kd') AS "AutoFormer KD",
  any_value(cell) FILTER (WHERE space = 'pit' AND metric = 'test_acc') AS "PiT base",
  any_value(cell) FILTER (WHERE space = 'pit' AND metric = 'test_acc_kd') AS "PiT KD",
  any_value(cell) FILTER (WHERE space = 'nb201' AND metric = 'test_acc') AS "NB201 test_acc"
FROM (SELECT space, proxy, metric,
             printf('%+.2f [%.2f, %.2f]', spearman, spearman_lo, spearman_hi) AS cell
      FROM study_correlation
      WHERE run_id = latest('vit_study') AND dataset IN ('cifar100_224', 'cifar100'))
GROUP BY proxy ORDER BY proxy
