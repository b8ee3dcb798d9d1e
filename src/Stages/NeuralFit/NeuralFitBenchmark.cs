using Pipeline.Stages.Models;
using System.Diagnostics;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Stages.NeuralFit;

/// <summary>
/// One cross-validated PLS fit timed in C# and the same fit (same data, same splits) timed in scikit-learn; r is the
/// max |r_C# − r_sklearn| over splits and sites. <see cref="NipalsAtMaxIterations"/> counts (split, component) pairs
/// where NIPALS stopped at max_iter (scikit-learn's count, from its own run).
/// </summary>
public sealed record NeuralFitBenchmarkResult(
    int Stimuli, int Features, int Sites, int Splits, int Components, int Threads,
    double CSharpSeconds, double CSharpScore, int TotalIterations,
    double? SklearnSeconds, double? SklearnScore, double? MaxRDifference, int? NipalsAtMaxIterations, string? SklearnError)
{
    public double? Speedup => SklearnSeconds / CSharpSeconds;
}

/// <summary>
/// Times <see cref="NeuralScoring.CrossValidated"/> on an HvM-size synthetic area (5,760 stimuli of 64 objects,
/// 1,000 features, 256 sites, 10 splits, PLS with 25 components) and runs <c>bench/reference/neural_fit.py</c> on the
/// same arrays (passed as .npy in a temp folder that is deleted). Data generation and file writing are not timed.
/// </summary>
public static class NeuralFitBenchmark
{
    /// <summary>
    /// Stimuli share a 64-dimensional latent: an object mean plus stimulus variation; features and responses are
    /// random linear read-outs of it plus independent noise, so the PLS components are real but not trivially few.
    /// </summary>
    public static (Tensor Features, Tensor Responses, int[] Labels) SyntheticArea(int stimuli, int features, int sites, int objects, long seed)
    {
        using var scope = NewDisposeScope();
        var g = new Generator((ulong)seed);
        const int Latent = 64;
        var labels = Enumerable.Range(0, stimuli).Select(i => i * objects / stimuli).ToArray();
        var objectMeans = randn([objects, Latent], float64, generator: g);
        var z = HeldScalars.Add(randn([stimuli, Latent], float64, generator: g), objectMeans.index_select(0, tensor(labels.Select(l => (long)l).ToArray())));
        var x = HeldScalars.Add(HeldScalars.DividedBy(z.matmul(randn([Latent, features], float64, generator: g)), 8), randn([stimuli, features], float64, generator: g));
        var y = HeldScalars.Add(HeldScalars.DividedBy(z.matmul(randn([Latent, sites], float64, generator: g)), 8), randn([stimuli, sites], float64, generator: g));
        return (x.MoveToOuterDisposeScope(), y.MoveToOuterDisposeScope(), labels);
    }

    public static async Task<NeuralFitBenchmarkResult> RunAsync(
        string referenceScript, int stimuli = 5760, int features = 1000, int sites = 256, int splits = 10, int components = 25,
        int threads = 2, long seed = 0, string python = "/usr/bin/python3", CancellationToken ct = default)
    {
        torch.set_num_threads(threads);
        var (x, y, labels) = SyntheticArea(stimuli, features, sites, objects: 64, seed);
        using (x)
        using (y)
        {
            var options = new RegressionOptions { PlsComponents = components, Splits = splits, Seed = seed };
            // Warm-up on a small problem: libtorch's first calls load kernels and threads.
            using (var wx = x[..200, ..50])
            using (var wy = y[..200, ..10])
                NeuralScoring.CrossValidated(wx, wy, labels[..200], options with { Splits = 2 });

            var clock = Stopwatch.StartNew();
            var result = NeuralScoring.CrossValidated(x, y, labels, options);
            var seconds = clock.Elapsed.TotalSeconds;
            var score = result.OverSplits().Mean;
            var total = result.PlsIterations!.Cast<int>().Sum();

            var folder = Path.Combine(Path.GetTempPath(), $"neural-bench-{Guid.NewGuid():N}");
            Directory.CreateDirectory(folder);
            try
            {
                NpyFile.Write(Path.Combine(folder, "features.npy"), x);
                NpyFile.Write(Path.Combine(folder, "responses.npy"), y);
                var tests = result.Splits.Select(s => s.Test.Select(i => (long)i).ToArray()).ToArray();
                using (var t = tensor(tests.SelectMany(v => v).ToArray(), [tests.Length, tests[0].Length]))
                    NpyFile.Write(Path.Combine(folder, "test_indices.npy"), t);

                var (exit, stdout, stderr) = await RunPythonAsync(python, $"{referenceScript} {folder} --components {components}", threads, ct);
                if (exit != 0)
                {
                    return new(stimuli, features, sites, splits, components, threads, seconds, score, total, null, null, null, null,
                        $"{python} {referenceScript} exited with {exit}: {stderr.Trim()} (scikit-learn: apt-get install -y python3-sklearn)");
                }
                var report = JsonNode.Parse(stdout.Trim().Split('\n')[^1])!;
                using var sklearnR = NpyFile.Read(Path.Combine(folder, "r.npy"));
                var rows = sklearnR.data<double>().ToArray();
                var maxDiff = 0.0;
                for (var s = 0; s < splits; s++)
                    for (var i = 0; i < sites; i++)
                        maxDiff = Math.Max(maxDiff, Math.Abs(rows[(s * sites) + i] - result.PerSplitPerSiteR[s, i]));
                var sklearnResult = new RegressionResult(RegressionKind.Pls, To2D(rows, splits, sites), result.Splits);
                var atMax = report["iterations"]!.AsArray().SelectMany(a => a!.AsArray()).Count(n => (int)n! >= options.PlsMaxIterations);
                return new(stimuli, features, sites, splits, components, threads, seconds, score, total,
                    (double)report["seconds"]!, sklearnResult.OverSplits().Mean, maxDiff, atMax, null);
            }
            finally
            {
                Directory.Delete(folder, recursive: true);
            }
        }
    }

    private static double[,] To2D(double[] values, int rows, int columns)
    {
        var result = new double[rows, columns];
        for (var r = 0; r < rows; r++)
            for (var c = 0; c < columns; c++)
                result[r, c] = values[(r * columns) + c];
        return result;
    }

    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunPythonAsync(string python, string args, int threads, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(python, args) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        // The same thread budget as the C# fit, whichever BLAS numpy links.
        foreach (var name in new[] { "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS" }) psi.Environment[name] = threads.ToString(System.Globalization.CultureInfo.InvariantCulture);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {python}");
        var stdout = p.StandardOutput.ReadToEndAsync(ct);
        var stderr = p.StandardError.ReadToEndAsync(ct);
        await p.WaitForExitAsync(ct);
        return (p.ExitCode, await stdout, await stderr);
    }
}
