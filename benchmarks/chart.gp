# Bar chart of GFLOP/s per shape and implementation, from latest.csv.
# Usage: gnuplot -e "results='benchmarks/results'" benchmarks/chart.gp
set terminal png size 1400,900 font ",11"
set output results.'/latest.png'
set datafile separator ','
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set ylabel 'GFLOP/s (higher is better)'
set xtics rotate by -20
set key top left
set grid ytics
set multiplot layout 2,1 title 'liblstm vs oneDNN, PyTorch and its own products alone (2 threads)'
do for [mode in 'infer train'] {
    set title mode
    # One row per network shape (T B I H, layers L, directions D): the GF/s
    # of each implementation at 2 threads, 0 where one has no measurement.
    # Columns are read by name, so their order in latest.csv does not matter;
    # the rows in bf16 and int8 (the precision column) are left out.
    table = sprintf("< /usr/bin/python3 -c \"import csv,collections;r=[x for x in csv.DictReader(open('%s/latest.csv')) if x['mode']=='%s' and x['threads']=='2' and x.get('precision','fp32') in ('fp32','')];d=collections.OrderedDict();[d.setdefault((x['T'],x['B'],x['I'],x['H'],x['layers'],x['directions']),{}).__setitem__(x['impl'],x['gflops']) for x in r];[print(','.join(['T%%s B%%s I%%s H%%s L%%s D%%s'%%k]+[v.get(i,'0') for i in ('liblstm','onednn','torch','ceiling')])) for k,v in d.items()]\"", results, mode)
    plot table using 2:xtic(1) title 'liblstm', '' using 3 title 'oneDNN', \
         '' using 4 title 'PyTorch', '' using 5 title 'ceiling (products alone)'
}
unset multiplot
