"""A small hand-written Turkish corpus for the LLM pipeline tests (the real corpora come from
``paramstack data sample``), and helpers to write it as ``{"id","text","source"}`` rows."""

from __future__ import annotations

import json
from pathlib import Path

PARAGRAPHS = [
    "Ankara, Türkiye Cumhuriyeti'nin başkentidir ve İç Anadolu Bölgesi'nde yer alır. Şehir, "
    "Cumhuriyet'in ilanından sonra hızla büyüdü. Bugün üniversiteleri, müzeleri ve geniş "
    "parklarıyla bilinir. Kışları soğuk ve karlı, yazları ise sıcak ve kuru geçer.",
    "İstanbul, Boğaziçi'nin iki yakasında kurulmuş büyük bir şehirdir. Tarih boyunca pek çok "
    "medeniyete başkentlik yapmıştır. Camileri, sarayları ve çarşıları her yıl milyonlarca "
    "ziyaretçiyi ağırlar. Vapurla karşıya geçmek şehrin en güzel deneyimlerinden biridir.",
    "Çay, Türkiye'de günün her saatinde içilen bir içecektir. Karadeniz kıyılarındaki yamaçlarda "
    "yetiştirilir. İnce belli bardaklarda sunulur ve misafirliğin vazgeçilmez parçasıdır. "
    "Demlik ve çaydanlık ile hazırlanan çay, koyu ya da açık içilebilir.",
    "Kapadokya, peribacaları ve yeraltı şehirleriyle ünlü bir bölgedir. Volkanik tüflerin rüzgâr "
    "ve yağmurla aşınmasıyla ilginç kaya şekilleri oluşmuştur. Sabahın erken saatlerinde "
    "gökyüzünü balonlar süsler. Bölgedeki kaya kiliseleri duvar resimleriyle dikkat çeker.",
    "Düzenli uyku, sağlıklı yaşamın temel taşlarından biridir. Yetişkinlerin çoğu gece yedi ile "
    "dokuz saat arasında uykuya ihtiyaç duyar. Yatmadan önce ekranlardan uzak durmak uykuya "
    "dalmayı kolaylaştırır. Her gün aynı saatte kalkmak vücudun ritmini dengeler.",
    "Türkçe, sondan eklemeli bir dildir ve kelimelere ekler getirilerek yeni anlamlar kurulur. "
    "Örneğin ev kelimesinden evler, evlerimiz ve evlerimizden gibi biçimler türetilir. Ünlü "
    "uyumu, eklerin seslerini belirleyen önemli bir kuraldır. Bu yapı dili düzenli kılar.",
    "Fotosentez, bitkilerin güneş ışığını kullanarak besin ürettiği süreçtir. Yapraklardaki "
    "klorofil ışığı emer ve su ile karbondioksiti şekere dönüştürür. Bu sırada havaya oksijen "
    "verilir. Yeryüzündeki canlıların büyük bölümü bu sürece dolaylı olarak bağlıdır.",
    "Karadeniz Bölgesi, yeşil ormanları ve bol yağışıyla tanınır. Yaylalarda yaz aylarında "
    "şenlikler düzenlenir. Fındık ve çay bölgenin en önemli tarım ürünleridir. Dik yamaçlara "
    "kurulmuş köyler, sisli sabahlarda masalsı bir görüntü sunar.",
    "Kütüphaneler, bilgiye herkesin ulaşabilmesi için kurulmuş kamusal alanlardır. Kitapların "
    "yanı sıra dergiler, haritalar ve dijital kaynaklar da sunarlar. Sessiz çalışma salonları "
    "öğrencilerin sık kullandığı yerlerdir. Birçok kütüphane çocuklara okuma saatleri sunar.",
    "Deprem, yer kabuğundaki ani kırılmalar sonucunda oluşan sarsıntıdır. Türkiye, aktif fay "
    "hatları üzerinde bulunduğu için depreme hazırlıklı olmalıdır. Binaların sağlam yapılması "
    "can kaybını azaltır. Her evde bir deprem çantası bulundurmak önerilir.",
    "Bisiklet, şehir içinde çevreci ve ekonomik bir ulaşım aracıdır. Düzenli bisiklet sürmek kalp "
    "sağlığını destekler ve kasları güçlendirir. Birçok belediye bisiklet yolları yapmaktadır. "
    "Kask takmak ve ışık kullanmak güvenli sürüş için gereklidir.",
    "Anadolu mutfağı, bölgeden bölgeye değişen zengin bir çeşitliliğe sahiptir. Zeytinyağlılar "
    "Ege'de, kebaplar Güneydoğu'da öne çıkar. Ekmek her sofranın baş tacıdır. Yemekten sonra "
    "ikram edilen Türk kahvesi, sohbetin en keyifli parçasıdır.",
]


def write_corpus(folder: Path, paragraphs: list[str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = paragraphs or PARAGRAPHS
    with (folder / "part-0.jsonl").open("w", encoding="utf-8") as fh:
        for i, text in enumerate(rows):
            fh.write(
                json.dumps({"id": f"t{i}", "text": text, "source": "test"}, ensure_ascii=False)
            )
            fh.write("\n")
    return folder
