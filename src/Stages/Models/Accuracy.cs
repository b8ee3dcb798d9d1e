using static TorchSharp.torch;

namespace Pipeline.Stages.Models;

/// <summary>Top-1 and top-5 of a classifier's logits, the one rule for when top-5 is reported, and their standard error.</summary>
public static class Accuracy
{
    /// <summary>With five classes or fewer top-5 is 100 % by construction: it is then not reported.</summary>
    public static bool ReportsTopFive(int classes) => classes > 5;

    /// <summary>Correct answers among the rows of <paramref name="logits"/> (images × classes): in the top 1 and in the top 5.</summary>
    public static (long Top1, long Top5) Hits(Tensor logits, Tensor labels)
    {
        using var scope = NewDisposeScope();
        var k = (int)Math.Min(5, logits.shape[1]);
        var hits = logits.topk(k, dim: 1).indexes.eq(labels.unsqueeze(1));
        return (hits[.., 0].sum().item<long>(), hits.any(dim: 1).sum().item<long>());
    }

    /// <summary>The binomial standard error of an accuracy <paramref name="p"/> measured on <paramref name="n"/> images.</summary>
    public static double StandardError(double p, long n) => n == 0 ? 0 : Math.Sqrt(p * (1 - p) / n);
}
