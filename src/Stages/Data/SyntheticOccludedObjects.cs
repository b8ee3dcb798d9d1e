using SkiaSharp;

namespace Pipeline.Stages.Data;

/// <summary>
/// The built-in dataset: one object per image on a gradient background among distractor fragments, partly hidden by
/// occluder blobs and bars. A class is a shape (up to 12 classes; texture then varies freely within a class) or, above
/// 12 classes, a shape × texture pair. Position, scale, rotation and colours are random. Each image is a pure function
/// of (seed, split, index), so parallel rendering is reproducible.
/// </summary>
/// <remarks>
/// Contrast (<c>min_contrast</c>): with independent colours an object is often the background's luma and its shape —
/// the label — cannot be seen (the first smoke runs stayed at chance). With a minimum contrast c > 0 the object's
/// colours (base and pattern) lie on one side of a luma gap of width c and the background's two gradient colours and
/// the occluders on the other (<see cref="ContrastPalette"/>): every object pixel differs from every background and
/// occluder pixel by at least c in BT.601 luma, so the visible part of the shape always stands out, also in grey.
/// Occluders then look like background (of any hue) and cut into the silhouette. c = 0 draws every colour
/// independently, as the hard set always did (its images are unchanged).
/// </remarks>
internal sealed class SyntheticOccludedObjects : IDatasetSource
{
    public static readonly IReadOnlyList<string> ShapeNames =
        ["circle", "square", "triangle", "star", "cross", "ring", "pentagon", "hexagon", "diamond", "crescent", "arrow", "l-shape"];

    public static readonly IReadOnlyList<string> TextureNames = ["solid", "stripes", "checker", "dots"];

    public const int MaxClasses = 12 * 4;

    // The occluded fraction is measured on a mask of at most this many pixels a side.
    private const int MaskSize = 64;

    private readonly int _numClasses;
    private readonly int _size;
    private readonly int[] _counts;
    private readonly double _occlusion;
    private readonly int _clutter;
    private readonly double _minContrast;
    private readonly ulong _seed;

    /// <param name="minContrast">Minimum luma difference (0..1) between the object and the background and occluders; 0
    /// draws every colour independently (the hard set).</param>
    public SyntheticOccludedObjects(int numClasses, int imageSize, int trainCount, int valCount, double occlusion, int clutter, long seed, double minContrast)
    {
        (_numClasses, _size, _counts, _occlusion, _clutter, _seed) = (numClasses, imageSize, [trainCount, valCount], occlusion, clutter, (ulong)seed);
        _minContrast = minContrast;
        Classes = Enumerable.Range(0, numClasses)
            .Select(c => numClasses <= ShapeNames.Count ? ShapeNames[c] : $"{ShapeNames[c % ShapeNames.Count]}-{TextureNames[c / ShapeNames.Count]}")
            .ToArray();
    }

    public IReadOnlyList<string> Classes { get; }
    public int Channels => 3;
    public int Count(ShardSplitName split) => _counts[(int)split];

    // Classes cycle with the index, so every split is balanced; the train shuffle mixes them across shards.
    public int ClassOf(ShardSplitName split, int index) => index % _numClasses;

    public string Describe(ShardSplitName split, int index) => $"{split.ToString().ToLowerInvariant()}[{index}]";

    public SourceImage Load(ShardSplitName split, int index) => new(Render(split, index), null);

    public SKBitmap Render(ShardSplitName split, int index) => Render(split, index, out _);

    /// <summary>Renders one image; <paramref name="occluded"/> is the measured fraction of the object hidden.</summary>
    public SKBitmap Render(ShardSplitName split, int index, out double occluded)
    {
        occluded = 0;
        var rng = new DeterministicRandom(DeterministicRandom.Mix(_seed, (ulong)split + 1, (ulong)index));
        var cls = ClassOf(split, index);
        var shape = cls % ShapeNames.Count;
        var texture = _numClasses <= ShapeNames.Count ? rng.Next(TextureNames.Count) : cls / ShapeNames.Count;
        float s = _size;

        var bitmap = new SKBitmap(new SKImageInfo(_size, _size, SKColorType.Rgba8888, SKAlphaType.Opaque));
        using var canvas = new SKCanvas(bitmap);
        using var paint = new SKPaint { IsAntialias = true };

        // Independent colours (the hard set) are drawn where they are used, in the order the set always drew them.
        var palette = _minContrast > 0 ? ContrastPalette.Draw(ref rng, _minContrast) : null;

        // Background: a two-colour gradient in a random direction.
        var angle = rng.Range(0, 2 * Math.PI);
        var (dx, dy) = (MathF.Cos(angle) * s / 2, MathF.Sin(angle) * s / 2);
        SKColor[] ends = palette is null ? [RandomColor(ref rng, 0.1, 0.9), RandomColor(ref rng, 0.1, 0.9)] : [palette.Background1, palette.Background2];
        using (var shader = SKShader.CreateLinearGradient(new SKPoint(s / 2 - dx, s / 2 - dy), new SKPoint(s / 2 + dx, s / 2 + dy),
                   ends, SKShaderTileMode.Clamp))
        {
            paint.Shader = shader;
            canvas.DrawPaint(paint);
            paint.Shader = null;
        }

        // Distractors: fragments of random shapes (cut by a random half-plane), smaller than the object.
        for (var i = 0; i < _clutter; i++)
        {
            using var fragment = ShapePath(rng.Next(ShapeNames.Count), rng.Range(0, s), rng.Range(0, s), rng.Range(0.06, 0.16) * s, rng.Range(0, 360));
            using var cut = HalfPlane(ref rng, fragment.Bounds);
            using var piece = fragment.Op(cut, SKPathOp.Intersect) ?? new SKPath();
            DrawTextured(canvas, piece, rng.Next(TextureNames.Count), null, ref rng);
        }

        // The object, wholly inside the image.
        var radius = rng.Range(0.22, 0.32) * s;
        var (cx, cy) = (rng.Range(radius, s - radius), rng.Range(radius, s - radius));
        using var obj = ShapePath(shape, cx, cy, radius, rng.Range(0, 360));
        DrawTextured(canvas, obj, texture, palette is null ? null : (palette.ObjectBase, palette.ObjectPattern), ref rng);

        if (_occlusion > 0)
        {
            using var occluders = Occluders(obj, cx, cy, radius, ref rng, out occluded);
            paint.Color = palette?.Occluder ?? RandomColor(ref rng, 0.05, 0.95);
            canvas.DrawPath(occluders, paint);
        }
        return bitmap;
    }

    /// <summary>
    /// Adds blobs and bars over the object until they cover the requested fraction of its area (±0.05), measured on a
    /// small mask; a candidate that would overshoot is retried smaller.
    /// </summary>
    private SKPath Occluders(SKPath obj, float cx, float cy, float radius, ref DeterministicRandom rng, out double occluded)
    {
        occluded = 0;
        var m = Math.Min(MaskSize, _size);
        var toMask = SKMatrix.CreateScale((float)m / _size, (float)m / _size);
        using var objMask = new SKBitmap(new SKImageInfo(m, m, SKColorType.Alpha8, SKAlphaType.Premul));
        using var occMask = new SKBitmap(new SKImageInfo(m, m, SKColorType.Alpha8, SKAlphaType.Premul));
        Rasterize(objMask, obj, toMask);
        var objPixels = objMask.GetPixelSpan().ToArray();
        var area = objPixels.Count(p => p >= 128);
        var target = Math.Clamp(_occlusion + rng.Range(-0.05, 0.05), 0.0, 0.95);

        var union = new SKPath();
        var scale = 1f;
        for (var attempt = 0; attempt < 48 && area > 0; attempt++)
        {
            var (px, py) = (cx + rng.Range(-radius, radius), cy + rng.Range(-radius, radius));
            SKPath candidate;
            if (rng.Chance(0.5))
            {
                var blob = rng.Range(0.2, 0.55) * radius * scale;
                candidate = Build(b => b.AddCircle(px, py, blob));
            }
            else
            {
                var (half, thick) = (rng.Range(0.6, 1.4) * radius, rng.Range(0.12, 0.3) * radius * scale);
                candidate = Build(b => b.AddRect(new SKRect(-half, -thick, half, thick)));
                candidate.Transform(SKMatrix.CreateRotationDegrees(rng.Range(0, 180)).PostConcat(SKMatrix.CreateTranslation(px, py)));
            }
            using var _ = candidate;
            using var merged = union.Op(candidate, SKPathOp.Union) ?? new SKPath(union);
            Rasterize(occMask, merged, toMask);
            var covered = Covered(objPixels, occMask.GetPixelSpan()) / (double)area;
            if (covered > target + 0.05)
            {
                scale *= 0.7f;
                continue;
            }
            union.Dispose();
            union = new SKPath(merged);
            occluded = covered;
            if (covered >= target - 0.05) break;
        }
        return union;
    }

    private static void Rasterize(SKBitmap mask, SKPath path, SKMatrix toMask)
    {
        using var canvas = new SKCanvas(mask);
        canvas.Clear(SKColors.Transparent);
        canvas.SetMatrix(toMask);
        using var paint = new SKPaint { IsAntialias = true, Color = SKColors.Black };
        canvas.DrawPath(path, paint);
    }

    private static int Covered(ReadOnlySpan<byte> obj, ReadOnlySpan<byte> occ)
    {
        var n = 0;
        for (var i = 0; i < obj.Length; i++)
            if (obj[i] >= 128 && occ[i] >= 128) n++;
        return n;
    }

    /// <summary>Fills <paramref name="path"/> with a base colour and, for patterned textures, a second colour on top;
    /// both random unless <paramref name="colors"/> gives them.</summary>
    private static void DrawTextured(SKCanvas canvas, SKPath path, int texture, (SKColor Base, SKColor Pattern)? colors, ref DeterministicRandom rng)
    {
        var bounds = path.Bounds;
        var (baseColor, patternColor) = colors ?? (RandomColor(ref rng, 0.0, 1.0), RandomColor(ref rng, 0.0, 1.0));
        var period = Math.Max(3f, rng.Range(0.2, 0.4) * Math.Max(bounds.Width, bounds.Height));
        var rotation = rng.Range(0, 180);
        using var paint = new SKPaint { IsAntialias = true, Color = baseColor };
        canvas.DrawPath(path, paint);
        if (texture == 0 || bounds.IsEmpty) return;

        canvas.Save();
        canvas.ClipPath(path, antialias: true);
        canvas.Translate(bounds.MidX, bounds.MidY);
        canvas.RotateDegrees(rotation);
        paint.Color = patternColor;
        var reach = Math.Max(bounds.Width, bounds.Height);
        var cells = (int)Math.Ceiling(reach / period) + 1;
        for (var i = -cells; i <= cells; i++)
        {
            for (var j = -cells; j <= cells; j++)
            {
                var (x, y) = (i * period, j * period);
                switch (texture)
                {
                    case 1 when j == 0:
                        canvas.DrawRect(x, -reach, period / 2, 2 * reach, paint);
                        break;
                    case 2 when ((i + j) & 1) == 0:
                        canvas.DrawRect(x, y, period, period, paint);
                        break;
                    case 3:
                        canvas.DrawCircle(x + period / 2, y + period / 2, period / 4, paint);
                        break;
                }
            }
        }
        canvas.Restore();
    }

    private static SKColor RandomColor(ref DeterministicRandom rng, double minValue, double maxValue) =>
        SKColor.FromHsv(rng.Range(0, 360), rng.Range(20, 100), rng.Range(minValue * 100, maxValue * 100));

    /// <summary>A large rectangle covering one side of a random line through the box, to cut a fragment.</summary>
    private static SKPath HalfPlane(ref DeterministicRandom rng, SKRect box)
    {
        var reach = 4 * Math.Max(box.Width, box.Height) + 1;
        var edge = rng.Range(-0.4, 0.3) * Math.Max(box.Width, box.Height);
        var path = Build(b => b.AddRect(new SKRect(-reach, edge, reach, reach)));
        path.Transform(SKMatrix.CreateRotationDegrees(rng.Range(0, 360)).PostConcat(SKMatrix.CreateTranslation(box.MidX, box.MidY)));
        return path;
    }

    /// <summary>Shape <paramref name="shape"/> of radius about <paramref name="r"/>, centred and rotated.</summary>
    internal static SKPath ShapePath(int shape, float cx, float cy, float r, float degrees)
    {
        var path = ShapeNames[shape] switch
        {
            "circle" => Build(b => b.AddCircle(0, 0, 1)),
            "square" => Build(b => b.AddRect(new SKRect(-0.8f, -0.8f, 0.8f, 0.8f))),
            "triangle" => Polygon(Regular(3, 1)),
            "star" => Polygon(Star(5, 1, 0.42f)),
            "cross" => Polygon([new(-0.3f, -1), new(0.3f, -1), new(0.3f, -0.3f), new(1, -0.3f), new(1, 0.3f), new(0.3f, 0.3f),
                new(0.3f, 1), new(-0.3f, 1), new(-0.3f, 0.3f), new(-1, 0.3f), new(-1, -0.3f), new(-0.3f, -0.3f)]),
            "ring" => Build(b =>
            {
                b.FillType = SKPathFillType.EvenOdd;
                b.AddCircle(0, 0, 1);
                b.AddCircle(0, 0, 0.55f);
            }),
            "pentagon" => Polygon(Regular(5, 1)),
            "hexagon" => Polygon(Regular(6, 1)),
            "diamond" => Polygon([new(0, -1), new(0.55f, 0), new(0, 1), new(-0.55f, 0)]),
            "crescent" => Crescent(),
            "arrow" => Polygon([new(-1, -0.25f), new(0.15f, -0.25f), new(0.15f, -0.65f), new(1, 0), new(0.15f, 0.65f), new(0.15f, 0.25f), new(-1, 0.25f)]),
            _ => Polygon([new(-0.8f, -0.95f), new(-0.2f, -0.95f), new(-0.2f, 0.35f), new(0.8f, 0.35f), new(0.8f, 0.95f), new(-0.8f, 0.95f)]),
        };
        path.Transform(SKMatrix.CreateScale(r, r).PostConcat(SKMatrix.CreateRotationDegrees(degrees)).PostConcat(SKMatrix.CreateTranslation(cx, cy)));
        return path;
    }

    private static SKPath Build(Action<SKPathBuilder> add)
    {
        using var builder = new SKPathBuilder();
        add(builder);
        return builder.Detach();
    }

    private static SKPath Polygon(SKPoint[] points) => Build(b => b.AddPoly(points, close: true));

    private static SKPath Crescent()
    {
        using var disc = Build(b => b.AddCircle(0, 0, 1));
        using var bite = Build(b => b.AddCircle(0.45f, 0, 0.8f));
        return disc.Op(bite, SKPathOp.Difference) ?? new SKPath();
    }

    private static SKPoint[] Regular(int sides, float r) =>
        Enumerable.Range(0, sides).Select(i => Polar(r, -Math.PI / 2 + 2 * Math.PI * i / sides)).ToArray();

    private static SKPoint[] Star(int points, float outer, float inner) =>
        Enumerable.Range(0, 2 * points).Select(i => Polar(i % 2 == 0 ? outer : inner, -Math.PI / 2 + Math.PI * i / points)).ToArray();

    private static SKPoint Polar(float r, double angle) => new((float)(r * Math.Cos(angle)), (float)(r * Math.Sin(angle)));
}
