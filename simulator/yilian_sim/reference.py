"""Reference data the simulator draws from: names, diagnoses, departments, drugs, targets.

Kept in one module so that the dbt seeds (modalities and their targets, ICD-10 chapters) can be
checked against the values the simulator really uses.
"""

from __future__ import annotations

# Minutes from read request to signed report within which a remote read counts as on time.
# Only DX's 25 minutes comes from the seeds (龙胜: "DR reports sent back within 25 minutes");
# the others are the usual service promises of Chinese imaging clouds, chosen here.
TURNAROUND_TARGET_MINUTES: dict[str, int] = {
    "DX": 25,
    "CT": 60,
    "MR": 120,
    "US": 30,
    "ECG": 15,
    "SM": 2880,
}

# Modalities that count as "remote imaging reads" for 每万常住人口远程影像诊断数: imaging, ECG and
# ultrasound do; pathology slides (SM) are remote diagnosis but not imaging.
REMOTE_IMAGING_MODALITIES: frozenset[str] = frozenset({"DX", "CT", "MR", "US", "ECG"})

# Common surnames with rough weights; 黔南 has many Buyi and Shui families (韦, 蒙, 潘, 石, 陆).
SURNAMES: tuple[tuple[str, float], ...] = (
    ("王", 6.0),
    ("李", 6.0),
    ("张", 5.5),
    ("刘", 4.0),
    ("陈", 4.0),
    ("杨", 4.5),
    ("黄", 3.0),
    ("吴", 3.5),
    ("罗", 3.0),
    ("赵", 2.0),
    ("周", 2.0),
    ("徐", 1.5),
    ("孙", 1.2),
    ("胡", 1.5),
    ("朱", 1.2),
    ("高", 1.0),
    ("林", 1.0),
    ("何", 1.2),
    ("郭", 1.0),
    ("马", 1.0),
    ("韦", 3.0),
    ("蒙", 2.5),
    ("潘", 2.5),
    ("石", 2.0),
    ("陆", 1.5),
    ("莫", 1.2),
    ("龙", 1.5),
    ("田", 1.2),
    ("宋", 0.8),
    ("唐", 1.0),
    ("邓", 1.0),
    ("冯", 0.8),
    ("谢", 0.9),
    ("韩", 0.6),
    ("曹", 0.6),
    ("岑", 0.6),
    ("欧阳", 0.3),
    ("梁", 1.0),
    ("卢", 0.8),
    ("袁", 0.7),
    ("蔡", 0.6),
    ("文", 0.8),
)
GIVEN_CHARS_MALE: str = "伟强磊军勇杰涛斌超明华平刚辉鹏飞宇浩俊峰建国志文荣昌德贵富林松海波成兴忠"
GIVEN_CHARS_FEMALE: str = "芳娟敏静丽艳娜秀英霞玲燕萍红梅兰琴凤洁婷雪颖慧佳欣怡珍月春花云桂莲菊"

# Mobile prefixes of the three carriers (移动, 联通, 电信).
PHONE_PREFIXES: tuple[str, ...] = (
    "134",
    "135",
    "136",
    "137",
    "138",
    "139",
    "147",
    "150",
    "151",
    "152",
    "157",
    "158",
    "159",
    "178",
    "182",
    "183",
    "187",
    "188",
    "198",
    "130",
    "131",
    "132",
    "155",
    "156",
    "166",
    "175",
    "176",
    "185",
    "186",
    "133",
    "153",
    "173",
    "177",
    "180",
    "181",
    "189",
    "191",
    "199",
)

# (ICD-10 国家临床版 2.0 code, department, weight) by care profile and encounter type.
Dx = tuple[tuple[str, str, float], ...]
DIAGNOSES_OUTPATIENT_PRIMARY: Dx = (
    ("I10.x00x002", "全科", 14.0),  # 高血压
    ("E11.900", "全科", 9.0),  # 2型糖尿病
    ("J06.900", "全科", 14.0),  # 急性上呼吸道感染
    ("J20.900", "全科", 5.0),  # 急性支气管炎
    ("K29.700", "全科", 5.0),  # 胃炎
    ("M54.500", "全科", 4.0),  # 腰痛
    ("M17.900", "全科", 2.0),  # 膝关节病
    ("K52.900", "全科", 3.0),  # 胃肠炎
    ("L30.900", "全科", 2.0),  # 皮炎
    ("Z00.000", "预防保健科", 4.0),  # 一般健康检查
    ("Z34.900", "预防保健科", 1.5),  # 正常妊娠监督
    ("I25.103", "全科", 2.0),  # 冠状动脉粥样硬化性心脏病
    ("J44.900", "全科", 2.0),  # 慢性阻塞性肺病
    ("I69.300", "康复医学科", 1.0),  # 脑梗死后遗症
)
DIAGNOSES_OUTPATIENT_HOSPITAL: Dx = (
    ("I10.x00x002", "心血管内科", 8.0),
    ("I25.103", "心血管内科", 4.0),
    ("E11.900", "内分泌科", 5.0),
    ("J06.900", "呼吸内科", 6.0),
    ("J18.900", "呼吸内科", 3.0),  # 肺炎
    ("J44.900", "呼吸内科", 2.0),
    ("K29.700", "消化内科", 4.0),
    ("K80.200", "普外科", 1.5),  # 胆囊结石
    ("M51.202", "骨科", 2.0),  # 腰椎间盘突出
    ("S52.500", "骨科", 1.0),  # 桡骨下端骨折
    ("N39.000", "泌尿外科", 1.5),  # 泌尿道感染
    ("H52.100", "眼科", 1.5),  # 近视
    ("H25.900", "眼科", 1.0),  # 老年性白内障
    ("K02.900", "口腔科", 2.0),  # 龋病
    ("J35.000", "耳鼻咽喉科", 1.0),  # 慢性扁桃体炎
    ("L20.900", "皮肤科", 1.5),  # 特应性皮炎
    ("N76.000", "妇科", 1.5),  # 急性阴道炎
    ("Z34.900", "产科", 1.5),
    ("J02.900", "儿科", 3.0),  # 急性咽炎
    ("I63.900", "神经内科", 1.5),  # 脑梗死
    ("G43.900", "神经内科", 1.0),  # 偏头痛
    ("C34.900", "肿瘤科", 0.8),  # 肺恶性肿瘤
    ("C16.900", "肿瘤科", 0.5),  # 胃恶性肿瘤
)
DIAGNOSES_OUTPATIENT_TCM: Dx = (
    ("M54.500", "针灸推拿科", 5.0),
    ("M51.202", "骨伤科", 3.0),
    ("M47.800", "骨伤科", 2.0),  # 颈椎病
    ("K29.700", "中医内科", 3.0),
    ("I10.x00x002", "中医内科", 3.0),
    ("G47.000", "中医内科", 2.0),  # 失眠
    ("J06.900", "中医内科", 2.0),
    ("N94.600", "中医妇科", 1.5),  # 痛经
    ("I69.300", "康复医学科", 1.5),
)
DIAGNOSES_OUTPATIENT_MCH: Dx = (
    ("Z34.900", "产科", 6.0),
    ("O21.000", "产科", 1.0),  # 轻度妊娠剧吐
    ("N76.000", "妇科", 3.0),
    ("N61.x00", "乳腺科", 1.0),  # 乳腺炎
    ("J02.900", "儿科", 4.0),
    ("J06.900", "儿科", 4.0),
    ("K52.900", "儿科", 2.0),
    ("Z00.100", "儿童保健科", 4.0),  # 常规儿童健康检查
)
DIAGNOSES_EMERGENCY: Dx = (
    ("R10.400", "急诊科", 4.0),  # 腹痛
    ("R50.900", "急诊科", 4.0),  # 发热
    ("S06.000", "急诊科", 2.0),  # 脑震荡
    ("S01.800", "急诊科", 2.0),  # 头部开放性伤口
    ("I21.900", "急诊科", 0.8),  # 急性心肌梗死
    ("I63.900", "急诊科", 1.0),
    ("J45.901", "急诊科", 1.0),  # 支气管哮喘急性发作
    ("T65.900", "急诊科", 0.5),  # 中毒
    ("K35.800", "急诊科", 1.2),  # 急性阑尾炎
    ("S72.000", "急诊科", 0.7),  # 股骨颈骨折
)
DIAGNOSES_INPATIENT: Dx = (
    ("J18.900", "呼吸内科", 5.0),
    ("J44.100", "呼吸内科", 3.0),  # 慢阻肺急性加重
    ("I63.900", "神经内科", 4.0),
    ("I50.900", "心血管内科", 2.0),  # 心力衰竭
    ("I21.900", "心血管内科", 1.0),
    ("E11.900", "内分泌科", 2.0),
    ("K80.200", "普外科", 2.0),
    ("K35.800", "普外科", 2.0),
    ("S72.000", "骨科", 1.5),
    ("M51.202", "骨科", 1.5),
    ("O80.000", "产科", 3.0),  # 单胎顺产
    ("O82.000", "产科", 1.0),  # 剖宫产
    ("C34.900", "肿瘤科", 1.0),
    ("N18.500", "肾内科", 0.8),  # 慢性肾脏病5期
)
DIAGNOSES_INPATIENT_PRIMARY: Dx = (
    ("J18.900", "内科", 5.0),
    ("J44.100", "内科", 2.0),
    ("I69.300", "康复医学科", 2.0),
    ("K52.900", "内科", 2.0),
    ("I10.x00x002", "内科", 2.0),
    ("O80.000", "妇产科", 1.0),
)
DIAGNOSES_INPATIENT_MCH: Dx = (
    ("O80.000", "产科", 5.0),
    ("O82.000", "产科", 2.0),
    ("J18.900", "儿科", 3.0),
    ("K52.900", "儿科", 1.0),
)
# Diagnoses only a woman can have; the generator swaps them for men.
FEMALE_ONLY_CATEGORIES: frozenset[str] = frozenset(
    {"Z34", "O21", "O80", "O82", "N76", "N94", "N61"}
)

# Drugs by main ingredient (Chinese generic names), with a typical price per item in yuan.
DRUGS: tuple[tuple[str, float], ...] = (
    ("苯磺酸氨氯地平片", 35.0),
    ("硝苯地平控释片", 42.0),
    ("厄贝沙坦片", 38.0),
    ("缬沙坦胶囊", 40.0),
    ("盐酸二甲双胍缓释片", 25.0),
    ("格列美脲片", 30.0),
    ("甘精胰岛素注射液", 180.0),
    ("阿托伐他汀钙片", 45.0),
    ("阿司匹林肠溶片", 15.0),
    ("氯吡格雷片", 60.0),
    ("阿莫西林胶囊", 18.0),
    ("头孢克肟分散片", 32.0),
    ("盐酸左氧氟沙星片", 28.0),
    ("布洛芬缓释胶囊", 16.0),
    ("奥美拉唑肠溶胶囊", 22.0),
    ("蒙脱石散", 14.0),
    ("氯雷他定片", 20.0),
    ("甲钴胺片", 26.0),
    ("复方丹参滴丸", 36.0),
    ("连花清瘟胶囊", 24.0),
    ("板蓝根颗粒", 12.0),
    ("沙美特罗替卡松吸入粉雾剂", 150.0),
)

# Prior results a patient may bring: (item code, category, in the recognition catalogue).
RESULT_ITEMS: tuple[tuple[str, str, bool], ...] = (
    ("JY-XCG", "lab", True),  # 血常规
    ("JY-SHQX", "lab", True),  # 生化全项
    ("JY-NCG", "lab", True),  # 尿常规
    ("JY-THXHDB", "lab", True),  # 糖化血红蛋白
    ("JY-NXGN", "lab", True),  # 凝血功能
    ("JY-ZLBZW", "lab", False),  # 肿瘤标志物 (not in the catalogue)
    ("JY-JSGN", "lab", False),  # 甲状腺功能
    ("YX-XBDR", "imaging", True),  # 胸部DR
    ("YX-TLCT", "imaging", True),  # 头颅CT
    ("YX-FBBC", "imaging", True),  # 腹部彩超
    ("YX-YZMR", "imaging", True),  # 腰椎MRI
    ("YX-XDT", "imaging", True),  # 心电图
    ("YX-PETCT", "imaging", False),  # PET-CT
)

REPORT_CONCLUSIONS: dict[str, tuple[str, ...]] = {
    "DX": ("双肺纹理增粗，心膈未见异常。", "胸部未见明显异常。", "右桡骨远端骨折，轻度移位。"),
    "CT": ("颅脑CT平扫未见明显异常。", "左侧基底节区腔隙性脑梗死。", "右肺上叶小结节，建议随访。"),
    "MR": ("L4/5椎间盘突出。", "颅脑MRI未见明显异常。", "右膝内侧半月板后角损伤。"),
    "US": ("肝胆胰脾未见明显异常。", "胆囊结石。", "宫内早孕，单活胎。"),
    "ECG": ("窦性心律，正常心电图。", "窦性心动过缓。", "ST-T改变，建议结合临床。"),
    "SM": ("慢性浅表性胃炎。", "(宫颈)慢性炎。", "(胃窦)中分化腺癌。"),
}
