using System.Diagnostics;
using Pipeline.Stages.NeuralFit;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Pipeline.Stages.Tests.NeuralFit;

/// <summary>PLS and ridge against scikit-learn 1.2.1 on the same data (Debian's python3-sklearn).</summary>
public sealed class NeuralFitReferenceTests : IDisposable
{
    private const string Python = "/usr/bin/python3";
    private const string Install = "apt-get install -y python3-sklearn";
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"neural-fit-tests-{Guid.NewGuid():N}");

    private readonly ITestOutputHelper _output;

    public NeuralFitReferenceTests(ITestOutputHelper output)
    {
        _output = output;
        torch.set_num_threads(1);
        Directory.CreateDirectory(_dir);
    }

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    /// <summary>Low-rank features and responses plus noise, as layer features and sites are: the PLS components differ.</summary>
    private static (Tensor X, Tensor Y, Tensor XTest) Data(int n, int p, int q, int seed)
    {
        var g = new Generator((ulong)seed);
        var latent = randn([n + 40, 8], float64, generator: g);
        var x = latent.matmul(randn([8, p], float64, generator: g)) + randn([n + 40, p], float64, generator: g) + 3.0;
        var y = latent.matmul(randn([8, q], float64, generator: g)) + (2 * randn([n + 40, q], float64, generator: g)) - 1.0;
        return (x[..n], y[..n], x[n..]);
    }

    public static TheoryData<int, int, int, int> Shapes => new()
    {
        { 200, 50, 20, 500 },  // p < n, many sites
        { 60, 120, 12, 500 },  // p > n: ridge goes through the kernel
        { 150, 30, 1, 500 },   // one site: NIPALS stops after one step
        { 120, 30, 45, 15 },   // more sites than features (PLS on the p side), and NIPALS cut off at max_iter
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public async Task Pls_and_ridge_predictions_equal_scikit_learn(int n, int p, int q, int maxIterations)
    {
        Assert.True(File.Exists(Python), $"{Python} is missing; {Install}");
        var probe = await Run($"-c \"import sklearn, numpy\"");
        Assert.True(probe.ExitCode == 0, $"python3 cannot import sklearn ({probe.Stderr.Trim()}); {Install}");

        using var scope = NewDisposeScope();
        var (x, y, xTest) = Data(n, p, q, seed: n + p + q);
        var components = Math.Min(25, p);
        using var pls = PlsRegression.Fit(x, y, components, maxIterations);
        var labels = Enumerable.Range(0, n).Select(i => i % 5).ToArray();
        using var cv = RidgeRegression.FitCrossValidated(x, y, labels, RegressionOptions.LogGrid(1e-3, 1e5, 9), folds: 5, seed: 1);
        using var ridge = RidgeRegression.Fit(x, y, alpha: 3.0);
        foreach (var (name, t) in new[] { ("x", x), ("y", y), ("x_test", xTest), ("alpha", tensor(3.0)), ("alphas", tensor(cv.Alphas.ToArray())) })
            NpyFile.Write(Path.Combine(_dir, $"{name}.npy"), t);

        var run = await Run($"{Path.Combine(AppContext.BaseDirectory, "NeuralFit", "sklearn_reference.py")} {_dir} {components} {maxIterations}");
        Assert.True(run.ExitCode == 0, run.Stderr);

        AssertClose(NpyFile.Read(Path.Combine(_dir, "pls_pred.npy")), pls.Predict(xTest), "PLS");
        AssertClose(NpyFile.Read(Path.Combine(_dir, "pls_x_weights.npy")), pls.XWeights, "PLS x weights");
        var sklearnIterations = NpyFile.Read(Path.Combine(_dir, "pls_n_iter.npy")).data<long>().ToArray();
        Assert.Equal(sklearnIterations, Enumerable.Range(0, components).Select(k => (long)pls.Iterations[0, k]).ToArray());
        if (maxIterations < 500) Assert.Contains((long)maxIterations, sklearnIterations); // the cut-off case is exercised
        AssertClose(NpyFile.Read(Path.Combine(_dir, "ridge_pred.npy")), ridge.Predict(xTest), "ridge");
        AssertClose(NpyFile.Read(Path.Combine(_dir, "ridge_per_site_pred.npy")), cv.Predict(xTest), "ridge, penalty per site");
    }

    /// <summary>Max |a − b| relative to max |b|, below 1e-4 (the contract); reported in the message.</summary>
    private void AssertClose(Tensor expected, Tensor actual, string what)
    {
        var e = expected.to(float64).reshape(actual.shape);
        var relative = (actual.cpu() - e).abs().max().ToDouble() / e.abs().max().ToDouble();
        _output.WriteLine($"{what}: max relative difference {relative:E2}");
        Assert.True(relative < 1e-4, $"{what}: max relative difference {relative:E2}");
    }

    private static async Task<(int ExitCode, string Stdout, string Stderr)> Run(string args)
    {
        var psi = new ProcessStartInfo(Python, args) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.Environment["OMP_NUM_THREADS"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await p.WaitForExitAsync(cts.Token);
        return (p.ExitCode, await stdout, await stderr);
    }
}
